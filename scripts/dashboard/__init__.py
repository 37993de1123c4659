"""The live dashboard (Streamlit): `make dashboard`, or `python -m scripts.dashboard [--port N]`.

- `queries.py`: every read (MongoDB, Kafka's end offsets) and the dashboard's own settings.
- `view.py`: pure; KPI values, chart frames and display rows from what the queries return.
- `app.py`: the Streamlit page (`streamlit run scripts/dashboard/app.py`).
"""
