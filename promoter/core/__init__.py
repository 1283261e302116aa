"""Pure decisions over plain data: no I/O, no clock, no MLflow, Spark, git or HTTP."""
