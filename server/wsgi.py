"""The WSGI entry point gunicorn serves."""

from server import create_app

app = create_app()
