"""sciportal.web"""
