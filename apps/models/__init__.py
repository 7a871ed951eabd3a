"""The Models page of the Streamlit suite (catalog, store, pull, delete)."""
