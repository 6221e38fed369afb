namespace CoeffTune.Training;

/// <summary>The trainer's settings: a handful of named values, validated once.</summary>
public sealed record TrainOptions
{
    public int Epochs { get; init; } = 10;
    /// <summary>Stops after this many optimiser steps in all (null: run every epoch).</summary>
    public int? MaxSteps { get; init; }
    public int BatchSize { get; init; } = 32;
    public double LearningRate { get; init; } = 1e-3;
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>Fraction of the steps spent warming the learning rate up linearly; cosine decay after.</summary>
    public double WarmupFraction { get; init; } = 0.1;
    public double ClipNorm { get; init; } = 1.0;
    public int Seed { get; init; } = 0;
    /// <summary>Write a checkpoint every this many steps (and at the end of every epoch).</summary>
    public int CheckpointEvery { get; init; } = 50;
    public string Device { get; init; } = "cpu";

    /// <summary>This, when every value is in range; else an <see cref="ArgumentException"/> whose ParamName is the property at fault.</summary>
    public TrainOptions Validate()
    {
        if (Epochs < 1) throw Bad(nameof(Epochs), "must be at least 1", Epochs);
        if (MaxSteps is < 1) throw Bad(nameof(MaxSteps), "must be at least 1", MaxSteps);
        if (BatchSize < 1) throw Bad(nameof(BatchSize), "must be at least 1", BatchSize);
        if (!(LearningRate > 0)) throw Bad(nameof(LearningRate), "must be positive", LearningRate);
        if (!(WeightDecay >= 0)) throw Bad(nameof(WeightDecay), "must be non-negative", WeightDecay);
        if (!(WarmupFraction >= 0 && WarmupFraction < 1)) throw Bad(nameof(WarmupFraction), "must be in [0, 1)", WarmupFraction);
        if (CheckpointEvery < 1) throw Bad(nameof(CheckpointEvery), "must be at least 1", CheckpointEvery);
        return this;
    }

    private static ArgumentException Bad(string property, string rule, object? value) =>
        new($"{nameof(TrainOptions)}.{property} {rule}, got {value}", property);

    /// <summary>Learning-rate factor at <paramref name="step"/> of <paramref name="total"/>: linear warmup, then cosine to zero.</summary>
    public double Schedule(int step, int total)
    {
        int warmup = (int)Math.Round(WarmupFraction * total);
        if (step < warmup) return (step + 1.0) / warmup;
        double progress = (step - warmup) / (double)Math.Max(1, total - warmup);
        return 0.5 * (1 + Math.Cos(Math.PI * Math.Min(1.0, progress)));
    }
}
