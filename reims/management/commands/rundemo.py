"""Set everything up on the embedded default and run web, worker and beat together."""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from documents.models import DocumentUpload


class Command(BaseCommand):
    help = (
        "Migrate, create an admin login (printed), load the demo portfolio, run detection, queue a "
        "reprocessing job, then start the web server, a Celery worker and Celery beat until Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--port", type=int, default=8000, help="web server port (default 8000)")
        parser.add_argument("--properties", type=int, default=12, help="demo properties (default 12)")
        parser.add_argument("--months", type=int, default=36, help="months per property (default 36)")
        parser.add_argument("--seed", type=int, default=7, help="random seed of the demo portfolio (default 7)")
        parser.add_argument("--username", default="admin", help="the admin login to create (default admin)")
        parser.add_argument("--no-serve", action="store_true", help="set up, then exit without serving")

    def handle(self, *args, **options) -> None:
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        password = self._admin_login(options["username"])

        if not DocumentUpload.objects.exists():
            output = settings.VAR_DIR / "demo"
            call_command(
                "generate_demo_portfolio",
                properties=options["properties"],
                months=options["months"],
                seed=options["seed"],
                output=str(output),
                load=True,
                no_detect=True,  # detected in-process just below, before the worker starts
                stdout=self.stdout,
            )
            call_command("detect_anomalies", all=True, stdout=self.stdout)
            call_command("reprocess", name="Demo reprocessing of the whole portfolio", stdout=self.stdout)
        else:
            self.stdout.write("Demo data already loaded: skipping generation and detection.")

        url = f"http://127.0.0.1:{options['port']}/admin/"
        self.stdout.write(self.style.SUCCESS(f"Admin login: {options['username']} / {password}  at {url}"))
        if options["no_serve"]:
            return
        self._serve(options["port"])

    def _admin_login(self, username: str) -> str:
        """Create (or reset) the demo admin and return its new password."""
        password = secrets.token_urlsafe(12)
        user_model = get_user_model()
        user, _ = user_model.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        return password

    def _serve(self, port: int) -> None:
        python = sys.executable
        processes = {
            "worker": [python, "-m", "celery", "-A", "reims", "worker", "-Q", "anomaly,default", "-l", "INFO"],
            "beat": [python, "-m", "celery", "-A", "reims", "beat", "-l", "INFO"],
            "web": [python, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        }
        children = {name: subprocess.Popen(cmd, cwd=settings.BASE_DIR) for name, cmd in processes.items()}
        self.stdout.write(f"Started {', '.join(f'{n} (pid {p.pid})' for n, p in children.items())}. Ctrl-C stops all.")

        def stop(*_: object) -> None:
            for child in children.values():
                if child.poll() is None:
                    child.terminate()
            for child in children.values():
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()

        signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
        try:
            while all(child.poll() is None for child in children.values()):
                time.sleep(1)
            ended = [name for name, child in children.items() if child.poll() is not None]
            self.stderr.write(f"{', '.join(ended)} stopped: stopping the others.")
        except KeyboardInterrupt:
            pass
        finally:
            stop()
