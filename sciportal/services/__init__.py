"""sciportal.services"""
