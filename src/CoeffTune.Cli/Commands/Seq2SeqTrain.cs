using System.Globalization;
using CoeffTune.Training;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune train</c> with a BART folder as --model: a source/target task, trained by teacher forcing and judged by BLEU.</summary>
public static class Seq2SeqTrain
{
    public static int Run(FineTuneOptions o, string encoding)
    {
        var options = new Seq2SeqFineTuneOptions
        {
            Model = o.Model, Task = o.Task, Method = o.Method, MethodOptions = o.MethodOptions,
            TrainSize = o.TrainSize, ValidationSize = o.ValidationSize, TestSize = o.TestSize, MaxTokens = o.MaxTokens, Train = o.Train,
            OutDir = o.OutDir, Resume = o.Resume, AllowSettingChanges = o.AllowSettingChanges, Encoding = encoding,
        };
        var result = Cli.WithFlags(TrainFlags.Settings, () =>
            ConsoleProgress.Run($"{o.Method} on {o.Task}", obs => Seq2SeqFineTune.Run(options, obs, ConsoleProgress.Log)));
        var v = result.Training.BestValidation;
        string F(string key) => v.Metrics.TryGetValue(key, out var x) ? x.ToString("0.###", CultureInfo.InvariantCulture) : "-";
        Console.WriteLine($"{result.Recipe}: best epoch {result.Training.BestEpoch} of {result.Training.History.Count}: validation BLEU {F("bleu")}, " +
            $"exact match {F("exact_match")}, token accuracy {F("token_accuracy")}, loss {v.Loss.ToString("0.####", CultureInfo.InvariantCulture)} " +
            $"({result.TrainExamples} training pairs, {result.ValidationExamples} validation pairs, {result.Training.Seconds:0} s)");
        if (result.Test is { } t)
        {
            string T(string key) => t.Metrics.TryGetValue(key, out var x) ? x.ToString("0.###", CultureInfo.InvariantCulture) : "-";
            Console.WriteLine($"test ({result.TestExamples} held-out pairs): BLEU {T("bleu")}, exact match {T("exact_match")}, token accuracy {T("token_accuracy")}");
        }
        Console.WriteLine(result.Trainable.ToString());
        Console.WriteLine($"adapter: {result.AdapterDir}");
        return 0;
    }
}
