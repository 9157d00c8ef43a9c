"""The scoring service: raw feedback in, comparable scores out, exactly once into ClickHouse.

- `agents.py`: the Faust agent (thin `async for` loop): raw topic -> scored topic / dead letters.
- `scorers/`: pure per-event scoring (measures, service-quality index, loyalty signals).
- `text/`: offline text analytics of comments (language, sentiment, themes, churn intent).
- `processing.py`: the pure `process_message` contract: bytes in, scored event or dead letter out.
- `sink/`: scored topic -> ClickHouse in batches, offsets committed only after the insert.
- `app.py`: where it is wired; `settings.py`: its one settings model; `metrics.py`: its metrics.
"""
