"""Evaluation: the Shifted Thinking Window (``stw``), benchmarks, runs (``runner``) and reports (``report``)."""
