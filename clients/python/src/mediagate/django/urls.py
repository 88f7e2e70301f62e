"""``path("mediagate/", include("mediagate.django.urls"))`` gives ``/mediagate/whoami``, the URL
that mediagate's ``forward`` session source is pointed at."""

from django.urls import path

from .views import whoami

app_name = "mediagate"

urlpatterns = [
    path("whoami", whoami, name="whoami"),
]
