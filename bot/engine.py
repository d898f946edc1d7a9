"""The answer engine: one object every front end calls. (Being written: API first.)"""
