"""sciportal.metadata"""
