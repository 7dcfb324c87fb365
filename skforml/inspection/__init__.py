"""Inspecting what FORML learned: the audit of the weights."""
