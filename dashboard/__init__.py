"""Show: the Streamlit dashboard. Reads rollups and marts only."""
