"""Consequences (后果): rankings (红黑榜), bulletins (通报), summons (约谈) and accountability (问责)."""
