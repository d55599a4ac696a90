"""Training: a thin TRL ``SFTTrainer`` recipe over a dataset version (``python -m z1data.train.sft``)."""
