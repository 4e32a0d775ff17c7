"""A stand-alone, stateful fake Trendyol marketplace and WooCommerce shop, served over real HTTP."""
