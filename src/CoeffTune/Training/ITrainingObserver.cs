namespace CoeffTune.Training;

/// <summary>
/// What the trainer tells whoever watches it (progress bars, metrics files, tests). Every callback has an empty
/// default, so an observer implements only what it needs. An observer cannot change the run; to stop it, cancel
/// the token passed to <see cref="Trainer{TBatch}.Fit"/>, from any callback.
/// </summary>
public interface ITrainingObserver
{
    /// <summary>Before the first step: the steps in all, per epoch, and the step a resumed run starts at (0 for a new one).</summary>
    void OnStart(int totalSteps, int stepsPerEpoch, int startStep) { }

    /// <summary>After each optimiser step: the steps done so far, the epoch (from 1), the batch's loss and the epoch's throughput.</summary>
    void OnStep(int step, int epoch, double loss, double examplesPerSecond) { }

    /// <summary>After each epoch's evaluation; <paramref name="best"/> when it is the best so far (its weights are kept).</summary>
    void OnEvaluation(EpochMetrics metrics, bool best) { }
}
