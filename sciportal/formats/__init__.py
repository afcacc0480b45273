"""sciportal.formats"""
