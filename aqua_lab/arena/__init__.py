"""Choosing between the models of a deployment: blind pairwise votes, pairwise judge verdicts, and
the Bradley-Terry leaderboard that reads both."""
