"""Differential checks: run two builds over every state of a modelled state space."""
