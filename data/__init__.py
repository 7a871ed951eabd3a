"""The evaluation and demo data sets Quintet ships (``quintet.data``): FLORES-200, WMT,
SAMSum, XSum, SQuAD, SST-2, TREC, AG News, MT-Bench and Alpaca samples. Sources and
licenses: ``README.md`` in this folder. Found through :func:`quintet.core.paths.data_path`."""
