"""sciportal.store"""
