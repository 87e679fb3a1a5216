"""The ceiling for ingest benchmarks: a bare WSGI app that only reads the multipart body
and answers 201, served by the same gunicorn with the same workers as the real server."""

from werkzeug.formparser import parse_form_data


def app(environ, start_response):
    if environ["REQUEST_METHOD"] == "POST":
        _stream, form, files = parse_form_data(environ)
        for f in files.values():
            f.read()
            f.close()
        body = b'<OpenRosaResponse xmlns="http://openrosa.org/http/response"><message/></OpenRosaResponse>'
        start_response("201 Created", [("Content-Type", "text/xml"),
                                       ("Content-Length", str(len(body)))])
        return [body]
    start_response("204 No Content", [("X-OpenRosa-Version", "1.0")])
    return [b""]
