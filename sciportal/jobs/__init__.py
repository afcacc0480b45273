"""sciportal.jobs"""
