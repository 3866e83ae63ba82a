"""Settings of the servers the tests start (`tests.conftest.app_server`): the product's own, with
the tests' fast password hasher.

The test process hashes passwords with MD5 (`tests.conftest.FAST_PASSWORD_HASHERS`): PBKDF2 at
Django's iteration count costs a third of a second per hash, and the suite makes hundreds of
users and sign-ins. A browser test signs in through the server's real login form with such a
user, so the server must know that hasher, and prefer it: with PBKDF2 first, Django would
re-hash the password with PBKDF2 at every successful sign-in. The default hashers stay listed,
so a user hashed the real way (tests/platform/test_login_throttle.py) still signs in.
"""

from django.conf import global_settings

from autobot.settings import *  # noqa: F403 - everything else exactly as in production

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *global_settings.PASSWORD_HASHERS]
