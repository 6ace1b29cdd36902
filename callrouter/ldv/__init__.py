"""The Logboek Dataverwerkingen (Logius' LDV standard): one record per processing of personal
data, written in the same transaction as the change it describes, exported over OTLP.

- `register`: the processing activities of the directory and the kinds of processing (pure);
- `records`: one record's fields and ids (pure: trace and span ids, W3C traceparent);
- `store`: writing records on an open connection or session;
"""
