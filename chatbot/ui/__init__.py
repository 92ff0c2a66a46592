"""The Gradio pages (customer, admin, embedded widget), one module per admin tab; handed the services they show."""
