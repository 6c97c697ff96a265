"""Figures: every plotting function of the book, by what it shows."""
