using CoeffTune.Generation;
using CoeffTune.Methods;
using CoeffTune.Methods.Baselines;
using CoeffTune.Models;
using CoeffTune.Tests.Models.Bart;
using CoeffTune.Training;
using TorchSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Training;

public sealed class Seq2SeqObjectiveTests(ITestOutputHelper output)
{
    private static readonly Seq2SeqExample[] Pairs =
    {
        new(new[] { 0, 5, 17, 9, 2 }, new[] { 0, 9, 17, 5, 2 }),
        new(new[] { 0, 33, 4, 21, 8, 12, 2 }, new[] { 0, 12, 2 }),
        new(new[] { 0, 6, 2 }, new[] { 0, 6, 6, 6, 7, 2 }),
        new(new[] { 0, 25, 26, 2 }, new[] { 0, 26, 25, 2 }),
    };

    [Fact]
    public void Batches_pad_sources_with_a_mask_and_labels_with_the_ignore_index()
    {
        var set = new Seq2SeqExamples(Pairs, padTokenId: 1, decoderStartTokenId: 2);
        using var batch = set.MakeBatch(new[] { 1, 3 }, CPU);
        Assert.Equal(new long[] { 0, 33, 4, 21, 8, 12, 2, 0, 25, 26, 2, 1, 1, 1 }, batch.InputIds.data<long>().ToArray());
        Assert.Equal(new long[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0 }, batch.AttentionMask.data<long>().ToArray());
        Assert.Equal(new long[] { 0, 12, 2, -100, 0, 26, 25, 2 }, batch.Labels.data<long>().ToArray());
        // The labels shifted right behind the decoder start token (BART's shift_tokens_right), padding as pad.
        Assert.Equal(new long[] { 2, 0, 12, 2, 2, 0, 26, 25 }, batch.DecoderInputIds.data<long>().ToArray());
        using var shifted = BartForConditionalGeneration.ShiftTokensRight(batch.Labels, 1, 2);
        Assert.Equal(new long[] { 2, 0, 12, 2, 2, 0, 26, 25 }, shifted.data<long>().ToArray());
        using var ignoredInside = BartForConditionalGeneration.ShiftTokensRight(tensor(new long[,] { { 0, -100, 5 } }), 1, 2);
        Assert.Equal(new long[] { 2, 0, 1 }, ignoredInside.data<long>().ToArray());
    }

    [Fact]
    public void Padding_is_left_out_of_the_loss()
    {
        using var model = TinyBart.Model(3, TinyBart.Shape with { Dropout = 0 });
        model.train();
        var objective = new Seq2SeqObjective();
        var set = new Seq2SeqExamples(Pairs, 1, 2);
        // The batch's loss is the mean over every real target token: each example's own mean, weighted by its length.
        using var batch = set.MakeBatch(new[] { 0, 1, 2, 3 }, CPU);
        double together = objective.Loss(model, batch).ToDouble();
        double sum = 0; int tokens = 0;
        for (int i = 0; i < Pairs.Length; i++)
        {
            using var one = set.MakeBatch(new[] { i }, CPU);
            sum += objective.Loss(model, one).ToDouble() * Pairs[i].Target.Length;
            tokens += Pairs[i].Target.Length;
        }
        output.WriteLine($"batch {together:0.######}, token-weighted mean of single examples {sum / tokens:0.######}");
        Assert.Equal(sum / tokens, together, 5);
    }

    [Fact]
    public void Label_smoothing_mixes_the_uniform_distribution_into_the_target()
    {
        using var model = TinyBart.Model(3, TinyBart.Shape with { Dropout = 0 });
        model.eval();
        var set = new Seq2SeqExamples(Pairs, 1, 2);
        using var batch = set.MakeBatch(new[] { 0, 1 }, CPU);
        double eps = 0.1;
        double smoothed = new Seq2SeqObjective(labelSmoothing: eps).Loss(model, batch).ToDouble();
        // By hand: over real tokens, (1 - eps) * (-log p[target]) + eps * mean over the vocabulary of (-log p[v]).
        using var logp = model.forward(batch.InputIds, batch.AttentionMask, batch.DecoderInputIds).log_softmax(-1);
        var labels = batch.Labels.data<long>().ToArray();
        double total = 0; int n = 0;
        for (int b = 0; b < 2; b++)
            for (int t = 0; t < batch.Labels.shape[1]; t++)
            {
                long y = labels[b * batch.Labels.shape[1] + t];
                if (y == Seq2SeqObjective.IgnoreIndex) continue;
                using var row = logp[b, t];
                total += (1 - eps) * -row[y].ToDouble() + eps * -row.mean().ToDouble();
                n++;
            }
        Assert.Equal(total / n, smoothed, 5);
        Assert.NotEqual(new Seq2SeqObjective().Loss(model, batch).ToDouble(), smoothed, 3);
    }

    [Fact]
    public void The_trainer_fits_a_small_bart_to_exact_match_and_bleu_100()
    {
        using var dir = new TempDir();
        using var model = TinyBart.Model(3, TinyBart.Shape with { Dropout = 0 });
        var peft = PeftModel.Wrap(model, BartForConditionalGeneration.Architecture, Array.Empty<string>(), new FullConfig());
        // Ten copies of the pairs to train on: ten steps an epoch, so evaluation and checkpoints come every ten steps.
        var train = new Seq2SeqExamples(Enumerable.Repeat(Pairs, 10).SelectMany(p => p).ToList(), 1, 2);
        var set = new Seq2SeqExamples(Pairs, 1, 2);
        var objective = new Seq2SeqObjective(generation: new GenerationOptions { MaxNewTokens = 8 }, extraSpecialIds: new[] { 0 });
        var before = objective.Evaluate(model, set, 4, CPU);
        var trainer = new Trainer<Seq2SeqBatch>(peft, objective, new TrainOptions { Epochs = 15, BatchSize = 4, LearningRate = 3e-3, WeightDecay = 0, CheckpointEvery = 1000 });
        var result = trainer.Fit(train, set, dir.Path);
        var after = result.BestValidation;
        output.WriteLine($"before: {string.Join(", ", before.Metrics.Select(m => $"{m.Key} {m.Value:0.###}"))}, loss {before.Loss:0.###}");
        output.WriteLine($"after {result.Steps} steps ({result.Seconds:0.0} s): {string.Join(", ", after.Metrics.Select(m => $"{m.Key} {m.Value:0.###}"))}, loss {after.Loss:0.###}");
        Assert.Equal("bleu", objective.SelectionMetric);
        Assert.True(before.Metrics["exact_match"] < 1);
        Assert.Equal(1.0, after.Metrics["token_accuracy"]);
        Assert.Equal(1.0, after.Metrics["exact_match"]);
        Assert.Equal(100.0, after.Metrics["bleu"], 6);
        Assert.Equal(after.Metrics["bleu"], after.Accuracy);
    }
}
