"""sciportal.adql"""
