using CoeffTune.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Training;

/// <summary>
/// What a training run optimises and how it judges the model: the loss of one batch, the evaluation of a whole
/// set, and the rule that picks the best epoch. The trainer knows nothing else of the task: classification is
/// one objective (<see cref="ClassificationObjective"/>); sequence-to-sequence and diffusion objectives plug in
/// the same way, each with its own batch type.
/// </summary>
public interface ITrainingObjective<in TBatch>
{
    /// <summary>The scalar loss to minimise on <paramref name="batch"/> (training mode, with gradients).</summary>
    Tensor Loss(nn.Module model, TBatch batch);

    /// <summary>The model on a whole set, in evaluation mode without gradients.</summary>
    Evaluation Evaluate(nn.Module model, IBatchSource<TBatch> set, int batchSize, Device device);

    /// <summary>True when <paramref name="candidate"/> beats <paramref name="best"/> (the best epoch's weights are kept).</summary>
    bool IsBetter(Evaluation candidate, Evaluation best);

    /// <summary>The metric <see cref="IsBetter"/> ranks by, as recorded in results, e.g. "accuracy".</summary>
    string SelectionMetric { get; }
}

/// <summary>Cross-entropy on class logits; the best epoch has the highest accuracy, ties broken by the lower loss.</summary>
public sealed class ClassificationObjective : ITrainingObjective<Batch>
{
    public string SelectionMetric => "accuracy";

    public Tensor Loss(nn.Module model, Batch batch) => nn.functional.cross_entropy(Classifier(model).forward(batch), batch.Labels!);

    public bool IsBetter(Evaluation candidate, Evaluation best) =>
        candidate.Accuracy > best.Accuracy || (candidate.Accuracy == best.Accuracy && candidate.Loss < best.Loss);

    public Evaluation Evaluate(nn.Module model, IBatchSource<Batch> set, int batchSize, Device device)
    {
        var classifier = Classifier(model);
        classifier.eval();
        using var _ = no_grad();
        long correct = 0; double lossSum = 0;
        for (int start = 0; start < set.Count; start += batchSize)
        {
            using var scope = NewDisposeScope();
            var idx = Enumerable.Range(start, Math.Min(batchSize, set.Count - start)).ToArray();
            using var batch = set.MakeBatch(idx, device);
            var logits = classifier.forward(batch);
            lossSum += nn.functional.cross_entropy(logits, batch.Labels!, reduction: nn.Reduction.Sum).ToDouble();
            correct += logits.argmax(1).eq(batch.Labels!).sum().ToInt64();
        }
        return new Evaluation(set.Count == 0 ? 0 : (double)correct / set.Count, set.Count == 0 ? 0 : lossSum / set.Count, set.Count);
    }

    private static TransformerClassifier Classifier(nn.Module model) => model as TransformerClassifier
        ?? throw new ArgumentException($"the classification objective trains a classifier, not a {model.GetType().Name}");
}
