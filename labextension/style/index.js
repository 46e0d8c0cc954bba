import './base.css';
import './arena.css';
