"""Weekly tenant health rollups: the week's figures, stored immutably, read and acted on."""
