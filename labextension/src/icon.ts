import { LabIcon } from '@jupyterlab/ui-components';

// a drop over three GPU bars; fills follow the theme's icon colour
const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">
  <path class="jp-icon3" fill="#616161" d="M12 2c-3 4.2-6 7.6-6 11a6 6 0 0 0 12 0c0-3.4-3-6.8-6-11zm0 15.5a3.5 3.5 0 0 1-3.5-3.5h2a1.5 1.5 0 0 0 1.5 1.5z"/>
</svg>`;

export const aquaIcon = new LabIcon({ name: 'aqua-lab:icon', svgstr: svg });
