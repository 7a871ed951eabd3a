"""The Fine-tuning page of the Streamlit suite and its background runs."""
