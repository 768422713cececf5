"""Campaign policy (创建活动政策): versioned policy data and the commands that set it."""
