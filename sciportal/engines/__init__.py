"""sciportal.engines"""
