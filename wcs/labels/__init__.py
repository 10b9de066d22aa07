"""Documents printed for customers: the return label as a PDF."""
