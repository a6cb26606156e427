class TrainingService:
    def __init__(self, platform):
        self.platform = platform

    def recover(self):
        pass
