"""sciportal.descriptors"""
