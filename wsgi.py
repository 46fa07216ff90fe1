"""Process entry: `gunicorn -c config/gunicorn.conf.py wsgi:app`."""

from bot import create_app
from config.settings import ConfigError

try:
    app = create_app()
except ConfigError as error:
    raise SystemExit(str(error)) from None
