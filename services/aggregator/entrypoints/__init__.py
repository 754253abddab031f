"""Entry points: the faust worker, the replay tool and the retention job (thin)."""
