"""Reading the inputs: knowledge bases, annotated corpora, the linking vocabulary, abbreviations, and where they come from (`DataArguments`)."""
