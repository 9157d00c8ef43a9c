"""A demo touchpoint: realistic multi-touchpoint feedback in German and English, with incidents."""
