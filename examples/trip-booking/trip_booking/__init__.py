"""A trip booking saga and a publishing pipeline, written on sagaworks' public API."""
