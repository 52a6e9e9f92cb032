"""User-interface helpers of the Streamlit app (state keys, common widgets, charts). No modelling here: every
computation lives in :mod:`crossemo_core`."""
