"""Dashboard pages, one Streamlit script each; registered in ``streamlit_app.py``."""
