"""Streamlit entry point (placeholder until the app issue lands)."""
