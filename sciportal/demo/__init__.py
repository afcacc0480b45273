"""sciportal.demo"""
