"""The provider's UI page: per pipeline, its runs and jobs with costs, the tuning leaderboard, the last
drift report and the model registry, read on the server from Airflow's metadata database and from the
connection's SageMaker and S3 (the local backend's for the demo).

:mod:`.plugin` registers it (Airflow 3: a FastAPI sub-app and a menu entry; Airflow 2.11: a Flask
AppBuilder view); :mod:`.overview` gathers the data, :mod:`.page` writes the HTML.
"""
