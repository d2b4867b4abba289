"""The clinicians' review app: a SMART on FHIR app launched from the chart, server-rendered."""
