"""Where and how outputs are written: storage, layout, schema, ids."""
