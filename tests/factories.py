import factory
from django.contrib.auth import get_user_model
from factory.django import DjangoModelFactory

from portal.services import role_groups_ensure

TEST_PASSWORD = "correct horse battery staple"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name")
    last_name = factory.Faker("last_name")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.PostGenerationMethodCall("set_password", TEST_PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if not create:
            return
        self.save()
        if extracted:
            groups = role_groups_ensure()
            self.groups.add(*(groups[str(r)] for r in extracted))
